from pathlib import Path

from odoo.tests import TransactionCase, tagged

ADDONS = Path(__file__).resolve().parents[3] / "addons"


@tagged("post_install", "-at_install")
class TestProductFamily(TransactionCase):
    """The product family installs together into one database."""

    def test_every_product_addon_is_installed(self):
        shipped = {p.parent.name for p in ADDONS.glob("*/__manifest__.py")}
        installed = self.env["ir.module.module"].search(
            [("name", "in", list(shipped)), ("state", "=", "installed")]
        )
        self.assertEqual(set(installed.mapped("name")), shipped)

    def test_queue_job_runs_our_jobs(self):
        # The connectors rely on queue_job's root channel existing.
        self.assertTrue(self.env.ref("queue_job.channel_root"))

    def test_product_addons_depend_on_connector_base(self):
        modules = self.env["ir.module.module"].search(
            [("name", "like", "connector_%"), ("state", "=", "installed")]
        )
        for module in modules - modules.filtered(lambda m: m.name == "connector_base"):
            self.assertIn("connector_base", module.dependencies_id.mapped("name"), module.name)
