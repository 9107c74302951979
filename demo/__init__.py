"""The README's main job (`make demo`), on embedded defaults and loopback only."""
