from odoo.tests import TransactionCase, new_test_user


class TestConnectorGroups(TransactionCase):
    """The two connector groups give what support staff and administrators need."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root_menu = cls.env.ref("connector_base.menu_connector_root")
        cls.jobs_menu = cls.env.ref("connector_base.menu_connector_jobs")
        cls.support = new_test_user(
            cls.env, login="rs_support", groups="connector_base.group_connector_user"
        )
        cls.admin = new_test_user(
            cls.env, login="rs_admin", groups="connector_base.group_connector_manager"
        )
        cls.clerk = new_test_user(cls.env, login="rs_clerk", groups="base.group_user")

    def visible_menus(self, user):
        """Menus of the Connectors app that the web client shows to ``user``."""
        menus = self.env["ir.ui.menu"].search([("id", "child_of", self.root_menu.id)])
        return menus.with_user(user)._filter_visible_menus()

    def test_manager_is_also_user_and_job_queue_manager(self):
        self.assertTrue(self.admin.has_group("connector_base.group_connector_user"))
        self.assertTrue(self.admin.has_group("queue_job.group_queue_job_manager"))

    def test_support_sees_the_exception_queue_but_not_job_internals(self):
        menus = self.visible_menus(self.support)
        self.assertIn(self.root_menu, menus)
        self.assertIn(self.env.ref("connector_base.menu_connector_exceptions"), menus)
        self.assertIn(self.env.ref("connector_base.menu_connector_outbound_exceptions"), menus)
        self.assertNotIn(self.jobs_menu, menus)
        self.assertNotIn(self.env.ref("connector_base.menu_connector_backends"), menus)

    def test_manager_reaches_the_job_queue(self):
        menus = self.visible_menus(self.admin)
        self.assertIn(self.root_menu, menus)
        self.assertIn(self.jobs_menu, menus)

    def test_plain_user_sees_no_connectors_menu(self):
        self.assertFalse(self.visible_menus(self.clerk))

    def test_odoo_administrator_is_connector_manager(self):
        admin = self.env.ref("base.user_admin")
        self.assertTrue(admin.has_group("connector_base.group_connector_manager"))
