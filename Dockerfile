# syntax=docker/dockerfile:1
#
# meteord in a container: a static binary on distroless, run as a non-root
# user. Build from a checkout (the commit and its date come in as build
# arguments, since .git is not sent to the builder):
#
#   docker build -t meteord \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(git log -1 --format=%cI) .
#   docker run --rm -p 4670:4670 meteord
#
# compose.yaml runs two nodes on Redis. See "Install on a server" in the
# README.

FROM golang:1.26 AS build
WORKDIR /src
# The modules first, so that a change to the code does not fetch them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION overrides the release name built into the code (1.06-go.1);
# COMMIT and DATE say which commit this is and when it was made.
ARG VERSION=""
ARG COMMIT=""
ARG DATE=""
RUN P=github.com/meteorpush/meteor/internal/version && \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w ${VERSION:+-X $P.version=$VERSION} ${COMMIT:+-X $P.commit=$COMMIT} ${DATE:+-X $P.date=$DATE}" \
      -o /out/meteord ./cmd/meteord

# distroless/static: CA certificates (rediss://), time zones, /etc/passwd
# with the user nonroot (65532); no shell, so the health check is meteord's
# own -healthcheck.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meteord /usr/local/bin/meteord
COPY LICENSE /usr/share/doc/meteord/LICENSE
USER nonroot:nonroot
# 4670 subscribers, 4671 the controller (publishers), 4672 the HTTP API,
# /metrics, /healthz and /readyz.
EXPOSE 4670 4671 4672
# The HTTP API answers /healthz on the container's loopback whatever
# AdminIP is; with another AdminPort, or AdminAPI 0, change or drop this.
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/meteord", "-healthcheck", "http://127.0.0.1:4672/healthz"]
ENTRYPOINT ["/usr/local/bin/meteord"]
# Every listener but the subscribers' stays on the container's loopback
# until it has a credential: for publishers in other containers, give the
# controller a token (they send AUTH <token> first) and the HTTP API one:
#   docker run ... meteord -ControllerIP '' -ControllerToken "$METEOR_CONTROLLER_TOKEN" -AdminIP '' -APIToken "$METEOR_TOKEN"
# (better: the tokens in a configuration file, which ps does not show).
# No configuration file is needed; mount one at /etc/meteord.conf to use
# it, and static files at /usr/local/meteor/public_html.
CMD []
