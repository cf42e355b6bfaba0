"""The POS simulator's own tests, run by the test command too.

They live beside the simulator (``simulators/test_pos.py``) as plain
unittest, so that the simulator can be checked without Odoo
(``cd tests && python3 -m unittest simulators.test_pos``). Odoo's runner
collects only the test classes a test module defines, hence one class here
per class there.
"""

from simulators import test_pos

from odoo.tests import BaseCase


class TestPosTickets(test_pos.TestTickets, BaseCase):
    allow_inherited_tests_method = True


class TestPosPush(test_pos.TestPush, BaseCase):
    allow_inherited_tests_method = True


class TestPosPushRetries(test_pos.TestPushRetries, BaseCase):
    allow_inherited_tests_method = True


class TestPosPushFaults(test_pos.TestPushFaults, BaseCase):
    allow_inherited_tests_method = True


class TestPosLegacyApi(test_pos.TestLegacyApi, BaseCase):
    allow_inherited_tests_method = True


class TestPosParkedSales(test_pos.TestParkedSales, BaseCase):
    allow_inherited_tests_method = True


class TestPosRateLimit(test_pos.TestRateLimit, BaseCase):
    allow_inherited_tests_method = True


class TestPosLegacyFaults(test_pos.TestLegacyFaults, BaseCase):
    allow_inherited_tests_method = True


class TestPosLegacyWebhooks(test_pos.TestLegacyWebhooks, BaseCase):
    allow_inherited_tests_method = True
