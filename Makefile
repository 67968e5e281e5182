# Chima build. `make run` starts the bot on the local shell; `make test` is what CI runs.
GO        ?= go
BIN       := bin
PLUGINS   := deploy cistatus backup
EXAMPLES  := hello
PYTHON    ?= /usr/bin/python3
PROTO     := sdk/proto/chima/plugin/v1/plugin.proto
MODULE    := github.com/chimaops/chima
PYPB      := sdk/python/chima_plugin/pb
# go-plugin's own protos (broker, controller, stdio), from its module source.
GOPLUGIN_PROTO = $(shell $(GO) list -m -f '{{.Dir}}' github.com/hashicorp/go-plugin)/internal/plugin
CONFIG    ?= examples/config/chima.yaml
NODE_PROTO := sdk/node/chima-plugin/proto

.PHONY: all build plugins run example test sdk-check bench soak proto lint clean

all: build

build:
	$(GO) build -o $(BIN)/chima ./cmd/chima
	@for p in $(dir $(wildcard $(addsuffix /main.go,$(addprefix plugins/,$(PLUGINS))))); do \
		p=$${p%/}; echo "$(GO) build -o $(BIN)/plugins/$$(basename $$p) ./$$p"; \
		$(GO) build -o $(BIN)/plugins/$$(basename $$p) ./$$p || exit 1; done
	@for e in $(EXAMPLES); do \
		echo "$(GO) build -o $(BIN)/plugins/$$e ./examples/$$e"; \
		$(GO) build -o $(BIN)/plugins/$$e ./examples/$$e || exit 1; done

run: build example
	$(BIN)/chima run --config $(CONFIG)

# restic for the backup plugin: the one .ci/services.sh built, else restic
# 0.18.1 built here with go install the first time (Debian's 0.14 is too
# old). RESTIC=/path/to/restic picks another.
RESTIC         ?= $(shell sed -n 's/^CHIMA_RESTIC=//p' $${CHIMA_SERVICES_ENV:-/tmp/chima-services/env} 2>/dev/null)
RESTIC_VERSION := 0.18.1

# The example app's local repository, which the deploy plugin deploys, and
# the backup plugin's restic, repository password and folder.
example:
	@examples/local/setup.sh $(BIN)/demo-repo
	@mkdir -p $(BIN)/backups
	@[ -s $(BIN)/backups/password ] || (umask 077; head -c 24 /dev/urandom | base64 > $(BIN)/backups/password)
	@if [ -n "$(RESTIC)" ] && [ -x "$(RESTIC)" ]; then ln -sf "$(RESTIC)" $(BIN)/restic; \
	else [ -x $(BIN)/tools/restic ] || { echo "building restic $(RESTIC_VERSION) for the backup plugin (once)"; \
		GOBIN=$(abspath $(BIN))/tools $(GO) install github.com/restic/restic/cmd/restic@v$(RESTIC_VERSION); }; \
		ln -sf tools/restic $(BIN)/restic; fi

test: sdk-check
	$(GO) vet ./... ./sdk/...
	$(GO) tool staticcheck ./... ./sdk/...
	$(GO) test -count=1 -timeout 15m ./... ./sdk/...

# The SDK is its own module (sdk/go.mod): it must build and pass its tests
# alone, at the minimum versions it asks for and with the oldest Go its go
# line names, and an author's module that requires it must stay small.
SDK_GO := go$(shell sed -n "s/^go //p" sdk/go.mod).0
sdk-check:
	cd sdk && GOWORK=off GOTOOLCHAIN=$(SDK_GO) $(GO) vet ./...
	cd sdk && GOWORK=off GOTOOLCHAIN=$(SDK_GO) $(GO) test -count=1 ./...
	@sdk/deps.sh

# The replicas soak test, outside make test: 10,000 jobs through two replica
# processes on one PostgreSQL, one killed -9 and restarted every minute;
# 0 lost and 0 duplicated. Needs .ci/services.sh up (about 15 minutes).
soak:
	CHIMA_SOAK=1 CHIMA_SERVICES_ENV=$${CHIMA_SERVICES_ENV:-/tmp/chima-services/env} \
		$(GO) test -count=1 -timeout 60m -v -run 'TestSoakTwoReplicas' ./core/jobs/

# Benchmarks of the dispatch path, plugin start, the deploy path and the
# pieces on them; BENCHMARKS.md records the figures and how to read them.
bench: build
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench 'Dispatch' -benchtime 3s -count 1 ./core/bot/ | tee $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'PluginStart' -benchtime 30x -count 1 ./core/bot/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'ConsoleMemory' -benchtime 20000x -count 1 ./cmd/chima/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'DeployCommand' -benchtime 30x -count 1 ./core/bot/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'CIWebhookToMessageEdit' -benchtime 400x -count 1 ./core/bot/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'Memory1000Subscriptions10000Commits' -benchtime 1x -count 1 ./plugins/cistatus/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./core/router/ ./core/policy/ ./core/store/ ./core/redact/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'JobsThroughput' -benchtime 2000x -count 1 ./core/jobs/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'SlackRoundTrip' -benchtime 5000x -count 1 ./adapters/slack/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'MattermostRoundTrip' -benchtime 5000x -count 1 ./adapters/mattermost/ | tee -a $(BIN)/bench.txt
	$(GO) test -run '^$$' -bench 'Outbox' -benchmem -count 1 ./core/outbox/ ./core/chat/ | tee -a $(BIN)/bench.txt
	CHIMA_SERVICES_ENV=$${CHIMA_SERVICES_ENV:-/tmp/chima-services/env} $(GO) test -run '^$$' -bench 'BackupOverhead' -benchtime 1x -count 1 -timeout 30m ./plugins/backup/ | tee -a $(BIN)/bench.txt

lint:
	$(GO) vet ./... ./sdk/...
	$(GO) tool staticcheck ./... ./sdk/...

proto:
	$(GO) build -o $(BIN)/tools/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o $(BIN)/tools/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc -I sdk/proto \
		--plugin=protoc-gen-go=$(BIN)/tools/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(BIN)/tools/protoc-gen-go-grpc \
		--go_out=. --go_opt=module=$(MODULE) \
		--go-grpc_out=. --go-grpc_opt=module=$(MODULE) \
		$(PROTO)
	@# The Python SDK (sdk/python/chima_plugin): Chima's protocol, go-plugin's
	@# own services (from its module, at the version go.mod names) and gRPC's
	@# health check, each under a virtual path so that the generated imports
	@# resolve inside the package (chima_plugin.pb...).
	rm -rf $(PYPB) && mkdir -p $(PYPB)/goplugin $(PYPB)/health
	$(PYTHON) -m grpc_tools.protoc -Ichima_plugin/pb=$(dir $(PROTO)) \
		--python_out=sdk/python --grpc_python_out=sdk/python $(PROTO)
	$(PYTHON) -m grpc_tools.protoc -Ichima_plugin/pb/goplugin=$(GOPLUGIN_PROTO) \
		--python_out=sdk/python --grpc_python_out=sdk/python \
		$(addprefix $(GOPLUGIN_PROTO)/,grpc_broker.proto grpc_controller.proto grpc_stdio.proto)
	$(PYTHON) -m grpc_tools.protoc -Ichima_plugin/pb/health=sdk/python/proto/grpc/health/v1 \
		--python_out=sdk/python --grpc_python_out=sdk/python sdk/python/proto/grpc/health/v1/health.proto
	touch $(PYPB)/__init__.py $(PYPB)/goplugin/__init__.py $(PYPB)/health/__init__.py
	@# The Node library loads its protos at run time: copies of Chima's and of
	@# the go-plugin services it serves (health.proto is gRPC's, kept as is).
	mkdir -p $(NODE_PROTO)/chima/plugin/v1 $(NODE_PROTO)/plugin
	cp $(PROTO) $(NODE_PROTO)/chima/plugin/v1/
	d=$$($(GO) list -m -f '{{.Dir}}' github.com/hashicorp/go-plugin) && \
		cp $$d/internal/plugin/grpc_broker.proto $$d/internal/plugin/grpc_controller.proto \
			$$d/internal/plugin/grpc_stdio.proto $(NODE_PROTO)/plugin/ && \
		chmod 644 $(NODE_PROTO)/plugin/*.proto

clean:
	rm -rf $(BIN)
