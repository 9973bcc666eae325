import json
import os
import time
import unittest

from sync_cluster_agent.framing import Refused
from sync_cluster_agent.release_files import MANIFEST_NAME
from sync_cluster_agent.release_store import LAYOUT_VERSION, ReleaseStore

from .helpers import TempDirTest

IDS = ["%08x" % n for n in range(1, 8)]


class StoreTest(TempDirTest):
    def setUp(self):
        super(StoreTest, self).setUp()
        self.store = ReleaseStore(self.dir, "proj", 3)

    def add_release(self, rid):
        """A release directory as Staging.publish leaves it (its content does not matter here)."""
        path = os.path.join(self.store.releases_dir, rid)
        os.makedirs(path)
        with open(os.path.join(path, MANIFEST_NAME), "w") as f:
            json.dump({"release": rid, "files": []}, f)

    def publish(self, rid):
        self.add_release(rid)
        self.store.lock(0)
        try:
            self.store.switch(rid)
        finally:
            self.store.unlock()


class PublishOrderTest(StoreTest):
    def test_releases_published_in_the_same_clock_tick_keep_their_order(self):
        for rid in IDS[:4]:
            self.publish(rid)
        self.assertEqual([r["id"] for r in self.store.releases()], list(reversed(IDS[:4])))

    def test_the_order_is_recorded_not_taken_from_the_directories_times(self):
        self.publish(IDS[0])
        self.publish(IDS[1])
        # Something on the node touches the older release's directory.
        later = time.time() + 3600
        os.utime(os.path.join(self.store.releases_dir, IDS[0]), (later, later))
        self.assertEqual([r["id"] for r in self.store.releases()], [IDS[1], IDS[0]])

    def test_a_rollback_keeps_the_publish_order(self):
        self.publish(IDS[0])
        self.publish(IDS[1])
        self.store.lock(0)
        self.store.switch(IDS[0], publish=False)
        self.store.unlock()
        self.assertEqual(self.store.current(), IDS[0])
        self.assertEqual([r["id"] for r in self.store.releases()], [IDS[1], IDS[0]])

    def test_a_release_placed_beside_current_is_the_oldest(self):
        self.publish(IDS[0])
        self.publish(IDS[1])
        self.add_release(IDS[2])
        self.store.place_oldest(IDS[2])
        self.assertEqual([r["id"] for r in self.store.releases()][-1], IDS[2])

    def test_a_release_without_a_record_is_ordered_by_its_directory_time(self):
        self.add_release(IDS[0])
        past = time.time() - 3600
        os.utime(os.path.join(self.store.releases_dir, IDS[0]), (past, past))
        self.publish(IDS[1])
        self.assertEqual([r["id"] for r in self.store.releases()], [IDS[1], IDS[0]])


class CollectionTest(StoreTest):
    def test_keeps_the_current_release_and_the_newest_up_to_keep_and_the_pinned_ones(self):
        for rid in IDS[:6]:
            self.publish(rid)
        self.store.lock(0)
        self.store.switch(IDS[0], publish=False)
        os.makedirs(os.path.join(self.store.project_dir, "pins"), exist_ok=True)
        open(os.path.join(self.store.project_dir, "pins", IDS[1]), "w").close()
        self.store.collect_garbage(IDS[0])
        self.store.unlock()
        self.assertEqual(sorted(r["id"] for r in self.store.releases()), sorted([IDS[0], IDS[1]] + IDS[4:6]))
        # The publish records of collected releases go with them.
        self.assertEqual(sorted(os.listdir(os.path.join(self.store.project_dir, "published"))),
                         sorted([IDS[0], IDS[1]] + IDS[4:6]))

    def test_nothing_is_collected_when_the_leaders_pins_are_not_known(self):
        for rid in IDS[:5]:
            self.publish(rid)
        self.store.collect = False
        self.assertEqual(list(self.store.due_for_collection(IDS[4])), [])


class LayoutAndLockTest(StoreTest):
    def test_a_directory_of_another_layout_is_refused(self):
        os.makedirs(self.store.project_dir)
        with open(self.store.layout_path(), "w") as f:
            f.write("%d\n" % (LAYOUT_VERSION + 1))
        with self.assertRaises(Refused) as caught:
            self.store.check_layout()
        self.assertEqual(caught.exception.code, "layout")

    def test_checking_an_unused_deploy_directory_writes_nothing(self):
        self.store.check_layout()
        self.assertEqual(os.listdir(self.dir), [])

    def test_a_held_lock_is_refused_after_the_timeout(self):
        self.store.lock(0)
        other = ReleaseStore(self.dir, "proj", 3)
        with self.assertRaises(Refused) as caught:
            other.lock(0)
        self.assertEqual(caught.exception.code, "locked")
        self.store.unlock()
        other.lock(0)
        other.unlock()

    def test_an_invalid_project_name_is_refused(self):
        for name in ("", "a/b", "..", ".hidden"):
            with self.assertRaises(Refused):
                ReleaseStore(self.dir, name, 3)


class RunsTest(StoreTest):
    def test_a_run_whose_leader_lives_here_is_live_and_an_exited_one_is_collected(self):
        runs = os.path.join(self.store.project_dir, "runs")
        os.makedirs(runs)
        host = os.uname()[1]
        open(os.path.join(runs, "%s@%d@0@%s" % (IDS[0], os.getpid(), host)), "w").close()
        open(os.path.join(runs, "%s@%d@0@%s" % (IDS[1], 2 ** 22 + 1, host)), "w").close()
        self.assertEqual([r["release"] for r in self.store.live_runs()], [IDS[0]])
        self.store.collect_runs()
        self.assertEqual(len(os.listdir(runs)), 1)


if __name__ == "__main__":
    unittest.main()
