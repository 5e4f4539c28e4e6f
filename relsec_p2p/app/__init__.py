"""The Textual UI; talks to a node only, never to sockets or crypto."""
