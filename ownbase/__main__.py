from ownbase.cli import main

main()
