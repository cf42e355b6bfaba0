"""Plain-Python parts of the Shopify connector: GraphQL client and mappers."""
