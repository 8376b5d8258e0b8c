from cleaning.cli import main

main()
