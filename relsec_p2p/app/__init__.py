"""The Textual UI: reads the core's model and types, acts only through a
node; never sockets or crypto."""
