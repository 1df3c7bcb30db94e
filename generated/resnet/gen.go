package resnet

//go:generate go tool backpropgen resnet.bpg
