import assert from "node:assert/strict";
import { test } from "node:test";
import {
  defaultProjectName,
  type MetadataTexts,
  nameInPyproject,
  nameInSetupCfg,
  nameInSetupPy,
  workerSafeName,
} from "../../src/core/inventory/project-name.js";

test("pyproject.toml: the [project] table's name, not another table's", () => {
  const text =
    '[tool.poetry]\nname = "poetry-name"\n\n[project]\nversion = "1"\nname = \'neo-pipeline\'  # here\n';
  assert.equal(nameInPyproject(text), "neo-pipeline");
  assert.equal(nameInPyproject('[build-system]\nrequires = ["setuptools"]\n'), undefined);
});

test("setup.cfg's [metadata] name and a literal name= in setup.py; a computed one is not guessed", () => {
  assert.equal(nameInSetupCfg("[options]\nname = no\n[metadata]\nname = methyl_flow\n"), "methyl_flow");
  assert.equal(nameInSetupPy('from setuptools import setup\nsetup(\n    name="aligner",\n)\n'), "aligner");
  assert.equal(nameInSetupPy("setup(name=NAME)\n"), undefined);
});

test("names are made safe for a directory on the workers", () => {
  assert.equal(workerSafeName("my project/v2"), "my-project-v2");
  assert.equal(workerSafeName(".."), "");
});

test("default name: the root's metadata, else for a src root the parent's metadata or name, else the root's name", () => {
  const files: Record<string, MetadataTexts> = {
    "/p/neo": { pyprojectToml: '[project]\nname = "neoantigen"\n' },
    "/p/plain": {},
  };
  const of = (dir: string) => files[dir] ?? {};
  assert.equal(defaultProjectName("/p/neo/src", of), "neoantigen");
  assert.equal(defaultProjectName("/p/plain/src", of), "plain");
  assert.equal(defaultProjectName("/p/neo", of), "neoantigen");
  assert.equal(defaultProjectName("/p/other", of), "other");
});
