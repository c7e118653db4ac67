"""The demo room and its traffic: what `livectl up --demo` shows, and load tests reuse."""
