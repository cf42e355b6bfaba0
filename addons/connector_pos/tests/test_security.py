from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import PosCase


@tagged("post_install", "-at_install")
class TestPosSecurity(PosCase):
    """Support reads the fleet; managers configure it; upload keys are managers' only."""

    def test_support_reads_stores_but_not_their_keys(self):
        support = new_test_user(
            self.env, login="pos-support", groups="connector_base.group_connector_user"
        )
        store = self.store.with_user(support)
        self.assertEqual(store.code, "S01")
        self.assertTrue(store.has_upload_key)
        with self.assertRaises(AccessError):
            store.read(["upload_key"])
        with self.assertRaises(AccessError):
            store.write({"name": "Renamed"})
        with self.assertRaises(UserError):
            store.action_generate_upload_key()

    def test_manager_generates_a_key_shown_once(self):
        manager = new_test_user(
            self.env, login="pos-manager", groups="connector_base.group_connector_manager"
        )
        old = self.store.sudo().upload_key
        action = self.store.with_user(manager).action_generate_upload_key()
        shown = self.env[action["res_model"]].browse(action["res_id"])
        self.assertEqual(shown.key, self.store.sudo().upload_key)
        self.assertNotEqual(shown.key, old)
        self.assertGreaterEqual(len(shown.key), 40)
