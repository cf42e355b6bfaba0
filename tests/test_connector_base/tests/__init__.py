from . import test_inbox
