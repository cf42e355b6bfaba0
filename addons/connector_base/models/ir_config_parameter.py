import math

from odoo import api, models
from odoo.exceptions import ValidationError

from .connector_health import THRESHOLD_PARAMETERS


class IrConfigParameter(models.Model):
    _inherit = "ir.config_parameter"

    @api.constrains("key", "value")
    def _check_connector_health_threshold(self):
        """The health check thresholds are minutes: a positive number."""
        for parameter in self.filtered(lambda p: p.key in THRESHOLD_PARAMETERS):
            try:
                minutes = float(parameter.value)
            except (TypeError, ValueError):
                minutes = 0.0
            if not (math.isfinite(minutes) and 0 < minutes <= 60 * 24 * 365):
                raise ValidationError(
                    self.env._(
                        "The system parameter %(key)s is a number of minutes above 0 and "
                        "within a year (for example %(default)s), not %(value)r. Correct it, "
                        "or delete it to use %(default)s minutes.",
                        key=parameter.key,
                        default=THRESHOLD_PARAMETERS[parameter.key],
                        value=parameter.value,
                    )
                )
