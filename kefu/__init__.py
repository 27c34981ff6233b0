"""kefu's domain, in area packages from the platform up (each package's docstring says what it owns):

``core`` → ``org`` | ``calendar`` → ``records`` → ``rules`` → ``notify`` → ``insight`` → ``schedule``, with ``runtime``
(embedded servers, launcher, CLI) composing them with the web tier and the jobs. An area imports only the areas below
it; ``.importlinter`` states this and the test suite checks it. See docs/architecture.md.
"""
