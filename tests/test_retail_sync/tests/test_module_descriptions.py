import contextlib
import io
import re
from pathlib import Path

from odoo.tests import TransactionCase, tagged

REPO = Path(__file__).resolve().parents[3]
# What docutils prints for a system message of level WARNING or above.
DOCUTILS_MESSAGE = re.compile(r"\((WARNING/2|ERROR/3|SEVERE/4)\)")


@tagged("post_install", "-at_install")
class TestModuleDescriptions(TransactionCase):
    """Each of our addons' page in Apps renders cleanly, as Odoo renders it.

    Without ``static/description/index.html`` Odoo renders the README as
    reStructuredText with docutils, which prints its complaints about a
    Markdown README on every install.
    """

    def our_modules(self):
        names = sorted(
            manifest.parent.name
            for pattern in ("addons/*/__manifest__.py", "tests/test_*/__manifest__.py")
            for manifest in REPO.glob(pattern)
        )
        modules = self.env["ir.module.module"].search([("name", "in", names)])
        self.assertEqual(sorted(modules.mapped("name")), names, "every addon is known to Odoo")
        return modules

    def test_every_description_renders_without_docutils_messages(self):
        for module in self.our_modules():
            with self.subTest(module=module.name):
                stderr = io.StringIO()
                with contextlib.redirect_stderr(stderr):
                    module._get_desc()
                self.assertFalse(DOCUTILS_MESSAGE.findall(stderr.getvalue()), stderr.getvalue())
                self.assertIn("<h1>", module.description_html)
                self.assertIn(module.shortdesc, module.description_html)
