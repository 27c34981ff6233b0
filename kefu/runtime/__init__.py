"""Running the product: embedded MongoDB and Redis, the launcher behind `./kefu.sh up` and the operator CLI."""
