from semstyle.cli.main import run

run()
