from . import client, release, shipment
