"""Plain-Python building blocks of the connectors (no Odoo import where avoidable)."""
