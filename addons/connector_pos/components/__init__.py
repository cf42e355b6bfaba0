from . import ticket
