import assert from "node:assert/strict";
import { test } from "node:test";
import { directiveLine, hostSettingsFrom, sshPath } from "../../src/core/inventory/ssh-config.js";

const source = {
  path: "/home/me/.ssh/config",
  text: "Host w1\n  ProxyCommand nc %h %p\n\nHost w2\n  ProxyJump  bastion\n",
  homeDir: "/home/me",
  localUser: "me",
  cwd: "/work",
  isReadable: (file: string) => !file.includes("missing"),
};

test("of ProxyJump and ProxyCommand, the one ssh obtained first applies, with its line", () => {
  const settings = hostSettingsFrom({ proxycommand: "nc %h %p", proxyjump: "bastion" }, "w1", source);
  assert.deepEqual(settings?.proxy, {
    keyword: "ProxyCommand",
    value: "nc %h %p",
    at: "/home/me/.ssh/config line 2",
    fromInventory: false,
  });
  assert.equal(
    hostSettingsFrom({ proxyjump: "bastion" }, "w2", source)?.proxy?.at,
    "/home/me/.ssh/config line 5",
  );
});

test("the first value of a keyword wins, and HostName's %h is the alias", () => {
  const settings = hostSettingsFrom(
    { hostname: ["%h.cluster", "other"], port: "2222", user: "ana" },
    "w1",
    source,
  );
  assert.deepEqual(settings, { hostName: "w1.cluster", port: 2222, user: "ana" });
});

test("an unreadable IdentityFile is skipped and a bad port ignored, so nothing applies", () => {
  assert.equal(hostSettingsFrom({ identityfile: "~/.ssh/missing", port: "99999" }, "w1", source), undefined);
});

test("an IdentityFile is expanded as ssh expands it", () => {
  const at = { homeDir: "/home/me", localUser: "me", cwd: "/work", alias: "w1", hostName: "w1.cluster" };
  assert.equal(sshPath("~/.ssh/id_%n", at), "/home/me/.ssh/id_w1");
  assert.equal(sshPath("%d/keys/%u@%h", at), "/home/me/keys/me@w1.cluster");
  assert.equal(sshPath("keys/id", at), "/work/keys/id");
  assert.equal(sshPath("100%%", at), "/work/100%");
});

test("a directive whose value was not found is placed at the first of its kind", () => {
  assert.equal(directiveLine(source.text, "ProxyJump", "elsewhere"), 5);
  assert.equal(directiveLine(source.text, "HostName", "x"), undefined);
});
