"""A test class whose set-up registers its own undoing: for class-wide scenarios (daemons, fakes, work dirs)."""

import sys
import unittest


class ClassCleanups(unittest.TestCase):
    """setUpClass runs cls.set_up_class(), which appends to cls.cleanups what undoes each thing it starts;
    tearDownClass runs them last first, and so does a set-up that fails half-way, before it raises."""

    @classmethod
    def set_up_class(cls):
        pass

    @classmethod
    def setUpClass(cls):
        cls.cleanups = []
        try:
            cls.set_up_class()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for fn in reversed(cls.cleanups):
            try:
                fn()
            except Exception as e:  # a cleanup must not hide the test's own failure
                sys.stderr.write("cleanup: %r\n" % e)
        cls.cleanups = []
