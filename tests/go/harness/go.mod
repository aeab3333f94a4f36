module strom.local/tests/go/harness

go 1.26
