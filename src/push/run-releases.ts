import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { batchesBySize, type LeaderRuns, releaseTopLevel } from "../core/release/live-runs.js";
import { type ManifestFile, releaseIdOf } from "../core/release/manifest.js";
import { AgentSession } from "../transport/agent-session.js";
import { directLinker, type NodeLink, type NodeLinker } from "../transport/node-link.js";
import { exportContents, exportManifest, hello, manifestFromWire, runs } from "../transport/worker-client.js";
import { ArchiveCache, type ReleaseArchives } from "./archive.js";
import type { Release } from "./node-push.js";

/** A live run's release, read from the leader, for the nodes that lack it. */
export interface RunRelease {
  release: Release;
  archives: ReleaseArchives;
  /** Its top-level names, verified to load from it on a node once installed. */
  topLevel: string[];
}

// How long a leader that did not answer is left alone before it is asked again.
const RETRY_MS = 30_000;

// Well under the agent's EXPORT_BYTES and the 64 MiB reply limit once in base64.
const EXPORT_BATCH_BYTES = 8 * 1024 * 1024;

/**
 * The leader as push and watch ask it, over an agent session of its own opened when first needed:
 * its pins and live runs as they are now, and the releases those runs use (the leader took each
 * from its own `current` when the run started, and keeps it while the run lives).
 */
export class LeaderRunSource {
  private opened: Promise<{ link: NodeLink; session: AgentSession }> | undefined;
  private readonly releases = new Map<string, Promise<RunRelease>>();
  private asking: Promise<LeaderRuns | undefined> | undefined;
  private waiting: Promise<LeaderRuns | undefined> | undefined;
  private failedAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly node: NodeSpec,
    private readonly project: string,
    private readonly options: { links?: NodeLinker | undefined; acceptNew: boolean },
  ) {}

  private async session(): Promise<AgentSession> {
    const opened = this.opened;
    if (opened) {
      try {
        const { session } = await opened;
        if (session.isOpen) return session;
      } catch {
        // Asked again below: a leader back since the last attempt answers.
      }
      if (this.opened === opened) this.close();
    }
    this.opened ??= this.open();
    return (await this.opened).session;
  }

  private async open(): Promise<{ link: NodeLink; session: AgentSession }> {
    const link = await (this.options.links ?? directLinker).link(this.node, {
      acceptNew: this.options.acceptNew,
    });
    try {
      const session = new AgentSession(this.node, await link.agent());
      await hello(session, this.node, this.project, this.node.keep, false);
      return { link, session };
    } catch (error) {
      link.close();
      throw error;
    }
  }

  /** The leader's pins and live runs now. */
  async runs(): Promise<LeaderRuns> {
    return runs(await this.session());
  }

  /**
   * The leader's pins and live runs as they are after this call (undefined when the leader cannot
   * be asked): a question already under way is followed by one more, shared by every caller that
   * came meanwhile. A leader that just failed to answer is not asked again for RETRY_MS, so a
   * leader that is down does not hold every publish back by its connect timeout.
   */
  fresh(): Promise<LeaderRuns | undefined> {
    if (this.waiting) return this.waiting;
    if (performance.now() - this.failedAt < RETRY_MS) return Promise.resolve(undefined);
    const asking = this.asking;
    if (!asking) return this.ask();
    this.waiting = asking.then(() => {
      this.waiting = undefined;
      return this.ask();
    });
    return this.waiting;
  }

  private ask(): Promise<LeaderRuns | undefined> {
    const asking: Promise<LeaderRuns | undefined> = this.runs()
      .catch(() => {
        this.failedAt = performance.now();
        return undefined;
      })
      .finally(() => {
        if (this.asking === asking) this.asking = undefined;
      });
    this.asking = asking;
    return asking;
  }

  /** A release the leader has, with its archives read from the leader's copy. */
  release(id: string): Promise<RunRelease> {
    let found = this.releases.get(id);
    if (!found) {
      found = this.read(id);
      this.releases.set(id, found);
      found.catch(() => this.releases.delete(id));
    }
    return found;
  }

  private async read(id: string): Promise<RunRelease> {
    const files = manifestFromWire(await exportManifest(await this.session(), id)) ?? [];
    if (releaseIdOf(files) !== id)
      throw new NodeError(this.node.name, `the leader's copy of release ${id} does not match its id`);
    const contents = new Map<string, Promise<Map<string, Buffer>>>();
    // Each file is fetched once, in batches of the files one worker lacks.
    const archives = new ArchiveCache(async (file) => {
      const batch = contents.get(file.path);
      if (!batch) throw new NodeError(this.node.name, `${file.path} of release ${id} was not asked for`);
      const content = (await batch).get(file.path);
      if (!content)
        throw new NodeError(this.node.name, `the leader did not send ${file.path} of release ${id}`);
      return content;
    });
    const session = () => this.session();
    const release: Release = { id, files, project: this.project };
    const fetchContents = (wanted: readonly ManifestFile[]) => {
      for (const batch of batchesBySize(
        wanted.filter((f) => !contents.has(f.path)),
        EXPORT_BATCH_BYTES,
      )) {
        const fetched = session().then((s) =>
          exportContents(
            s,
            id,
            batch.map((f) => f.path),
          ),
        );
        for (const f of batch) contents.set(f.path, fetched);
        // A failed fetch is asked again by the next worker that lacks those files.
        fetched.catch(() => {
          for (const f of batch) if (contents.get(f.path) === fetched) contents.delete(f.path);
        });
      }
    };
    return {
      release,
      topLevel: releaseTopLevel(files),
      archives: {
        get: (wanted) => {
          fetchContents(wanted);
          return archives.get(wanted);
        },
        gzipped: (wanted) => {
          fetchContents(wanted);
          return archives.gzipped(wanted);
        },
      },
    };
  }

  close(): void {
    const opened = this.opened;
    this.opened = undefined;
    void opened
      ?.then(({ link, session }) => {
        session.close();
        link.close();
      })
      .catch(() => {});
  }
}
