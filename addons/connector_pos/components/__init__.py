from . import catalog, client, ticket
