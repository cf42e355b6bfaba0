from . import components, controllers, models, wizards
