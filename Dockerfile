# HazardWatch binaries in one small image: static, run as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...
# The data directory, made here because the runtime image has no shell: a
# named volume mounted on it takes its owner, so the non-root user can write.
RUN mkdir -p /data/hazardwatch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY configs/ /etc/hazardwatch/
COPY --from=build --chown=nonroot:nonroot /data/hazardwatch /var/lib/hazardwatch
USER nonroot:nonroot
WORKDIR /var/lib/hazardwatch
ENTRYPOINT []
CMD ["hazardwatch", "-sites", "/etc/hazardwatch/sites", "-http", "0.0.0.0:8080", "-mqtt", "0.0.0.0:1883", "-data", "/var/lib/hazardwatch"]
