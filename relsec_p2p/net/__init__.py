"""asyncio I/O: discovery, links, the node that drives a core Session."""
