"""The shared package: provider library, domain, store and services; one Lambda layer."""
