"""The Shopify order the order benchmarks (P2, P2b) import, shared by both."""


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
