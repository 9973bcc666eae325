import assert from "node:assert/strict";
import { test } from "node:test";
import {
  deltaBase,
  PIPELINE_BYTES,
  pushRefusal,
  pushStep,
  sendsWithPrepare,
  type WorkerReleases,
} from "../../src/core/release/push-decisions.js";

const worker = (over: Partial<WorkerReleases> = {}): WorkerReleases => ({
  current: "r1",
  pthOk: true,
  releases: [{ id: "r1" }, { id: "r0" }],
  sitePackages: "/v/lib/python3.11/site-packages",
  ...over,
});

test("a worker on the release with its .pth right needs nothing; with a broken .pth, a switch", () => {
  assert.equal(pushStep(worker(), "r1", true), "nothing");
  assert.equal(pushStep(worker({ pthOk: false }), "r1", true), "switch");
});

test("a release the worker holds is switched to; one it lacks is published", () => {
  assert.equal(pushStep(worker(), "r0", true), "switch");
  assert.equal(pushStep(worker(), "r2", true), "publish");
  assert.equal(pushStep(worker({ current: null, releases: [] }), "r2", true), "publish");
});

test("a run's release installed beside current: holding it is enough, never a switch", () => {
  assert.equal(pushStep(worker(), "r0", false), "nothing");
  assert.equal(pushStep(worker({ pthOk: false }), "r1", false), "nothing");
  assert.equal(pushStep(worker(), "r2", false), "publish");
});

const target = { node: "w1", venv: "~/venv", project: "proj", replace: false };
const here = { host: "leader", root: "/home/me/proj" };
const there = { host: "other", root: "/home/me/proj" };

test("a worker without a virtualenv is refused with how to make one", () => {
  assert.match(
    pushRefusal(worker({ sitePackages: null }), target) ?? "",
    /python3 -m venv --system-site-packages ~\/venv/,
  );
  assert.equal(pushRefusal(worker(), target), undefined);
});

test("a project of the same name from elsewhere is refused, unless replaced", () => {
  assert.equal(pushRefusal(worker({ origin: here }), { ...target, origin: here }), undefined);
  assert.ok(pushRefusal(worker({ origin: there }), { ...target, origin: here }));
  assert.equal(pushRefusal(worker({ origin: there }), { ...target, origin: here, replace: true }), undefined);
  assert.equal(pushRefusal(worker({ origin: there }), target), undefined);
});

test("a delta is sent against current only when its files are known", () => {
  assert.equal(deltaBase({ current: "r1" }, true), "r1");
  assert.equal(deltaBase({ current: "r1" }, false), null);
  assert.equal(deltaBase({ current: null }, true), null);
});

test("archives up to 1 MiB go with their prepare", () => {
  assert.ok(sendsWithPrepare(PIPELINE_BYTES));
  assert.ok(!sendsWithPrepare(PIPELINE_BYTES + 1));
});
