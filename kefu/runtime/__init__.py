"""Running the product: embedded MongoDB and Redis, the launcher behind `./kefu.sh up`, what every start prepares
(``prepare``: shipped types, calendar, demo data), the indexes of every area (``storage``) and the operator CLI.
The composition root's helpers: the only area that may import the adapters (``jobs``, ``seed``)."""
