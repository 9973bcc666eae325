import os
import time
import unittest

from sync_cluster_agent import durable
from sync_cluster_agent.durable import make_durable, remove_in_background, replace_file

from .helpers import TempDirTest


class ReplaceFileTest(TempDirTest):
    def test_writes_the_file_whole_with_its_mode(self):
        target = self.path("f.pth")
        replace_file(target, "one\n", 0o600)
        with open(target) as f:
            self.assertEqual(f.read(), "one\n")
        self.assertEqual(os.stat(target).st_mode & 0o777, 0o600)

    def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_one(self):
        target = self.path("f.pth")
        replace_file(target, "old\n")
        with self.assertRaises(UnicodeEncodeError):
            replace_file(target, "new \udc80\n")
        with open(target) as f:
            self.assertEqual(f.read(), "old\n")
        self.assertEqual(os.listdir(self.dir), ["f.pth"])


class MakeDurableTest(TempDirTest):
    def test_each_path_or_the_whole_file_system(self):
        with open(self.path("a"), "w") as f:
            f.write("x")
        make_durable([self.path("a"), self.dir], self.dir, False)
        make_durable([], self.dir, True)

    def test_a_missing_path_is_named_in_the_error(self):
        with self.assertRaises(OSError) as caught:
            make_durable([self.path("gone")], self.dir, False)
        self.assertEqual(caught.exception.filename, self.path("gone"))


class RemoveInBackgroundTest(TempDirTest):
    def test_removes_the_paths_and_reaps_the_remover_later(self):
        doomed = self.path(".trash-x")
        os.makedirs(os.path.join(doomed, "deep"))
        remove_in_background([doomed])
        deadline = time.monotonic() + 10
        while os.path.exists(doomed) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertFalse(os.path.exists(doomed))
        remove_in_background([])
        for pid in list(durable.REMOVERS):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


if __name__ == "__main__":
    unittest.main()
