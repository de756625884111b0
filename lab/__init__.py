"""`shoal lab`: N real Docker hosts on one Linux machine (the role docker-machine plays), for the
tests, the benches and the quickstart. Stdlib only; imports nothing from the manager."""
