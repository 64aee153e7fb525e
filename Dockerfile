# evrouted in a container: built on Debian bookworm with Debian's -dev packages, run on
# bookworm-slim with only the runtime libraries, as a non-root user.
#   docker build -t evroute .
#   docker run -p 8080:8080 -v evroute-data:/var/lib/evroute evroute
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      libcpp-httplib-dev libboost-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libyaml-cpp-dev \
      libsimdjson-dev libssl-dev libsystemd-dev zlib1g-dev libnats-dev libjemalloc-dev libisal-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt README.md ./
COPY lib lib
COPY daemon daemon
COPY examples examples
COPY config config
COPY systemd systemd
COPY packaging packaging
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEVROUTE_BUILD_TESTS=OFF \
      -DEVROUTE_BUILD_BENCH=OFF -DEVROUTE_BUILD_LOAD_TOOLS=OFF \
 && cmake --build build -j"$(nproc)" --target evrouted \
 && strip build/daemon/evrouted

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcpp-httplib0.11 libyaml-cpp0.7 libsimdjson14 libspdlog1.10 \
      libfmt9 libssl3 libsystemd0 zlib1g libnats3.4 libjemalloc2 libisal2 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/evroute --no-create-home evroute \
 && mkdir -p /var/lib/evroute /etc/evroute \
 && chown evroute:evroute /var/lib/evroute
COPY --from=build /src/build/daemon/evrouted /usr/bin/evrouted
COPY config/docker.yaml /etc/evroute/evroute.yaml
USER evroute
WORKDIR /var/lib/evroute
VOLUME ["/var/lib/evroute"]
EXPOSE 8080
# SIGTERM drains the queues for up to shutdown_timeout (10s); `docker stop -t 30` leaves room.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/bin/evrouted", "--probe", "--config", "/etc/evroute/evroute.yaml"]
ENTRYPOINT ["/usr/bin/evrouted"]
CMD ["--config", "/etc/evroute/evroute.yaml"]
