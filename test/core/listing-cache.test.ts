import assert from "node:assert/strict";
import { test } from "node:test";
import type { TreeEntry } from "../../src/core/module-set/module-set.js";
import { ListingCache } from "../../src/resolve/listing-cache.js";

const file = (name: string, extra: Partial<TreeEntry> = {}): TreeEntry => ({
  name,
  type: "file",
  size: 1,
  mode: 0o644,
  mtimeMs: 1,
  ...extra,
});

function filled(): ListingCache {
  const cache = new ListingCache();
  for (const dir of ["", "a", "a/b", "a/b/c", "ab", "d"]) cache.set(dir, [file("x.py")]);
  return cache;
}

const kept = (cache: ListingCache) =>
  ["", "a", "a/b", "a/b/c", "ab", "d"].filter((dir) => cache.get(dir) !== undefined);

test("a changed file forgets its directory's listing only", () => {
  const cache = filled();
  cache.invalidate("a/b/x.py");
  assert.deepEqual(kept(cache), ["", "a", "a/b/c", "ab", "d"]);
});

test("a changed directory forgets its parent, itself and everything below, not its siblings", () => {
  const cache = filled();
  cache.invalidate("a/b");
  assert.deepEqual(kept(cache), ["", "ab", "d"]);
});

test("a change at the top forgets the root's listing; the root itself forgets everything", () => {
  const top = filled();
  top.invalidate("new.py");
  assert.deepEqual(kept(top), ["a", "a/b", "a/b/c", "ab", "d"]);
  const all = filled();
  all.invalidate("");
  assert.equal(all.size, 0);
});

test("listings with a symbolic link or an unreadable entry are never kept", () => {
  const cache = new ListingCache();
  cache.set("l", [file("x.py"), file("y.py", { link: { target: "/elsewhere/y.py", outsideRoot: true } })]);
  cache.set("e", [file("x.py", { error: "permission denied" })]);
  cache.set("ok", [file("x.py")]);
  assert.equal(cache.get("l"), undefined);
  assert.equal(cache.get("e"), undefined);
  assert.equal(cache.size, 1);
});
