"""A POS fleet wired to a harness database, as an administrator sets it up.

:func:`wire_pos_fleet` runs the run command's POS wiring (``setup/demo.py``,
one ``odoo shell``) on the stack's database before its server starts (a
:class:`~reliability.harness.Stack` wiring): the POS catalogue's products,
the POS's tax codes as price-included taxes, the payment methods, a running
push fleet backend with its tenders (cash per store) and tax codes mapped, a
Point of Sale per store with its upload key typed into the POS.
``reference_tills`` adds as many Points of Sale of no store, each with its
session opened as a cashier opens it: what Odoo's own POS syncs its orders
into, the benchmarks' reference. ``stock_policy`` is the fleet's (and the
reference sessions'): ``real_time`` (a delivery per order) or ``closing``.

It returns what the wiring wrote (upload keys, ids by SKU, tax code and
tender, the reference tills).
"""

import demo

from .harness import ScenarioFailed


def wire_pos_fleet(
    stack, pos, *, stores, reference_tills=0, rounding="round_per_line", stock_policy="real_time"
):
    """Connect the stack's database to the fleet of the POS simulator ``pos``;
    returns the ids the wiring wrote (see the module)."""
    with open(stack.server.log_path, "a") as log:
        try:
            return demo.wire_pos(
                pos,
                stack.server.base_args(),
                stack.server.url,
                stack.workdir / "pos_wiring.json",
                stores=stores,
                reference_tills=reference_tills,
                rounding=rounding,
                stock_policy=stock_policy,
                log=log,
            )
        except demo.WiringFailed as exc:
            raise ScenarioFailed(str(exc)) from None
