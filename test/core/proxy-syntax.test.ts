import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  expandProxyTokens,
  parseHop,
  parseHopList,
  proxyCommandArgv,
} from "../../src/core/ssh/proxy-syntax.js";

const hops = (text: string) => {
  const parsed = parseHopList(text);
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.problem);
  return parsed.value;
};
const hopsOf = (text: string) => {
  const list = hops(text);
  assert.ok(!list.none);
  return list.hops;
};
const problemOf = (text: string) => {
  const parsed = parseHopList(text);
  assert.ok(!parsed.ok, `expected ${text} to be refused`);
  return parsed.problem;
};

describe("parseHopList", () => {
  test("one hop, several hops, users, ports, ssh URIs and IPv6 addresses", () => {
    assert.deepEqual(hops("bastion"), { none: false, hops: [{ written: "bastion", host: "bastion" }] });
    assert.deepEqual(hops("alice@gw.example.org:2222, login"), {
      none: false,
      hops: [
        { written: "alice@gw.example.org:2222", user: "alice", host: "gw.example.org", port: 2222 },
        { written: "login", host: "login" },
      ],
    });
    assert.deepEqual(hopsOf("ssh://bob@10.0.0.1:22"), [
      { written: "ssh://bob@10.0.0.1:22", user: "bob", host: "10.0.0.1", port: 22 },
    ]);
    assert.deepEqual(hopsOf("[fe80::1]:2200"), [{ written: "[fe80::1]:2200", host: "fe80::1", port: 2200 }]);
    assert.deepEqual(hopsOf("[::1]"), [{ written: "[::1]", host: "::1" }]);
  });

  test("none, in any case, disables jumping", () => {
    assert.deepEqual(hops("none"), { none: true });
    assert.deepEqual(hops(" NONE "), { none: true });
    assert.match(problemOf("a,none"), /cannot be one hop among others/);
  });

  test("bad syntax is refused with the reason", () => {
    assert.match(problemOf(""), /names no hop/);
    assert.match(problemOf("a,,b"), /a hop is empty/);
    assert.match(problemOf("a,"), /a hop is empty/);
    assert.match(problemOf("a b"), /contains a space/);
    assert.match(problemOf("bastion:0"), /the port `0`/);
    assert.match(problemOf("bastion:70000"), /the port `70000`/);
    assert.match(problemOf("bastion:ssh"), /the port `ssh`/);
    assert.match(problemOf("@bastion"), /the user ``/);
    assert.match(problemOf("alice@"), /names no host/);
    assert.match(problemOf("-oProxyCommand=x"), /not a host name/);
    assert.match(problemOf("a;rm"), /not a host name/);
    assert.match(problemOf("fe80::1"), /several colons/);
    assert.match(problemOf("[bastion]:22"), /only an IPv6 address/);
    assert.match(problemOf("http://proxy:8080"), /a URI of another kind/);
  });

  test("a single hop keeps what was written, for messages", () => {
    const hop = parseHop("me@b:22");
    assert.ok(hop.ok);
    assert.equal(hop.value.written, "me@b:22");
  });
});

describe("expandProxyTokens", () => {
  const tokens = { host: "10.0.0.5", alias: "w5", port: 2222, user: "alice" };
  test("%h %n %p %r and %% expand as ssh_config(5) says", () => {
    assert.deepEqual(expandProxyTokens("nc %h %p # %n as %r, 100%%", tokens), {
      ok: true,
      value: "nc 10.0.0.5 2222 # w5 as alice, 100%",
    });
    assert.deepEqual(expandProxyTokens("%%h", tokens), { ok: true, value: "%h" });
  });
  test("unknown tokens and a lone % are refused", () => {
    const unknown = expandProxyTokens("nc %x %p", tokens);
    assert.ok(!unknown.ok && /unknown token %x/.test(unknown.problem));
    const lone = expandProxyTokens("nc %h %", tokens);
    assert.ok(!lone.ok && /lone %/.test(lone.problem));
  });
});

describe("proxyCommandArgv", () => {
  test("plain words run without a shell", () => {
    assert.deepEqual(proxyCommandArgv("ip netns exec ns1  nc 10.0.0.5 22"), [
      "ip",
      "netns",
      "exec",
      "ns1",
      "nc",
      "10.0.0.5",
      "22",
    ]);
    assert.deepEqual(proxyCommandArgv("/usr/bin/ssh -W 10.0.0.5:22 -p 2222 gw.example.org"), [
      "/usr/bin/ssh",
      "-W",
      "10.0.0.5:22",
      "-p",
      "2222",
      "gw.example.org",
    ]);
  });
  test("anything a shell would interpret goes through sh -c with exec", () => {
    for (const command of [
      "nc %h %p 2>/dev/null",
      'python3 "/my relay.py" h 22',
      "nc $GW 22",
      "a | b",
      "a; b",
      "~/bin/relay h 22",
      "relay 'h' 22",
      "FOO=1 relay h",
      "relay h*",
    ]) {
      assert.deepEqual(proxyCommandArgv(command), ["/bin/sh", "-c", `exec ${command}`], command);
    }
  });
});
