module keel.bench/go

go 1.19
