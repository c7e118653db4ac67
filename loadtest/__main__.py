from loadtest.cli import main

# Client processes are spawned: they import this module again and must not rerun the bench.
if __name__ == "__main__":
    raise SystemExit(main())
