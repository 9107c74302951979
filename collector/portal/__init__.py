"""The portal: people, sessions and the read model and change flows behind its pages and API."""
