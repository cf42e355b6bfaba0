from . import test_backend, test_export, test_journal, test_settlement
