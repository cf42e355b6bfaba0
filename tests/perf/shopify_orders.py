"""What the order benchmarks (P2, P2b) share: their store and the Shopify
order they import."""


def bench_store(env, stock):
    """Three storable products with ``stock`` units each and a running
    Shopify backend; ``(warehouse, products, backend)``, committed."""
    company = env.company
    if not company.country_id:
        company.country_id = env.ref("base.be")
    warehouse = env["stock.warehouse"].search([("company_id", "=", company.id)], limit=1)
    products = env["product.product"]
    for sku in ("BENCH-A", "BENCH-B", "BENCH-C"):
        product = env["product.product"].search([("default_code", "=", sku)]) or env[
            "product.product"
        ].create({"name": sku, "default_code": sku, "is_storable": True, "list_price": 25})
        env["stock.quant"]._update_available_quantity(product, warehouse.lot_stock_id, stock)
        products |= product
    backend = env["connector.backend"].create(
        {
            "name": "Bench store",
            "backend_type": "shopify",
            "shopify_shop_domain": "bench.example",
            "base_url": "http://127.0.0.1:9",
            "shopify_warehouse_id": warehouse.id,
            "shopify_tax_policy": "shopify",
            "state": "running",
        }
    )
    env.cr.commit()
    return warehouse, products, backend


def order_payload(currency, number, skus, tax_rate, financial_status="paid"):
    """A 3-line order of 25.00 each, taxed as Odoo taxes the same products."""
    tax = round(25 * tax_rate, 2)
    return {
        "id": 7_000_000 + number,
        "name": f"#B{number}",
        "currency": currency,
        "taxes_included": False,
        "email": f"buyer{number}@example.com",
        "financial_status": financial_status,
        "total_price": f"{3 * (25 + tax):.2f}",
        "customer": {
            "id": 8_000_000 + number,
            "first_name": "Bench",
            "last_name": f"#{number}",
            "email": f"buyer{number}@example.com",
        },
        "line_items": [
            {
                "id": 9_000_000 + number * 10 + i,
                "sku": sku,
                "title": sku,
                "quantity": 1,
                "price": "25.00",
                "tax_lines": [{"rate": tax_rate, "price": f"{tax:.2f}"}] if tax else [],
            }
            for i, sku in enumerate(skus)
        ],
        "shipping_lines": [],
    }
