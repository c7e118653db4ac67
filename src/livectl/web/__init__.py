"""The consoles: pages and assets served by the gateway, no build step and no CDN."""
