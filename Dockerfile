# redraft with Debian's redis-server as its child.
#
#   make docker            (stamps the version from git), or
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t redraft .
#
# One node:   docker run -p 7481:7481 -v redraft1:/data redraft
# A cluster:  give each container a name others can reach and advertise it,
#   docker run --name n1 --network rd -v n1:/data redraft -advertise n1:7481
#   docker run --name n2 --network rd -v n2:/data redraft -advertise n2:7481 -join n1:7481
# Metrics, health checks and backups over HTTP:
#   docker run -p 7481:7481 -p 9121:9121 -v redraft1:/data redraft -metrics-addr 0.0.0.0:9121
#   (a health check: curl -f http://HOST:9121/readyz)
# Arguments after the image name are appended to the entrypoint, and a
# flag given twice takes its last value, so -dir and -bind can be changed
# there too. Every option can also come from REDRAFT_<NAME> variables or a
# mounted --config file, below any flag. The node runs as uid 7481: a host
# directory mounted on /data must be writable by it.

# The build stage's Go matches go.mod's go directive.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG BUILD_DATE=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w \
        -X github.com/redraft/redraft/internal/version.Version=${VERSION} \
        -X github.com/redraft/redraft/internal/version.Commit=${COMMIT} \
        -X github.com/redraft/redraft/internal/version.BuildDate=${BUILD_DATE}" \
      -o /out/redraft .

FROM debian:bookworm-slim
ARG VERSION=dev
LABEL org.opencontainers.image.title="redraft" \
      org.opencontainers.image.description="redis-server replicated with Raft" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
# redis-server is the child; its package also brings redis-cli (redis-tools).
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 7481 redraft \
 && useradd --system --uid 7481 --gid redraft --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin redraft \
 && install -d -o redraft -g redraft -m 0750 /data
COPY --from=build /out/redraft /usr/local/bin/redraft
USER redraft
WORKDIR /data
VOLUME /data
EXPOSE 7481
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/redraft", "-dir", "/data", "-bind", "0.0.0.0"]
