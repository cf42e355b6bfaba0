from . import client, release
