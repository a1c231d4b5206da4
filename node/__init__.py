"""The running member node: store, index, local and peer APIs, jobs, config, CLI."""
