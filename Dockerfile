# Shoal in a container: the manager and `shoal join` agents need no Docker socket, only the
# engines' TCP addresses and discovery (`shoal lab` needs the host itself and is not for here).
#   docker build -t shoal .                       online: python:3.11-slim, wheels built here
#   docker build --build-arg BASE=<image> .       any base with python3 (3.11) and useradd
# Offline, put Shoal's wheel and its dependencies' wheels (pip's too) in wheels/ of the build
# context (`shoal lab image` does that, from a Debian base it makes with debootstrap): nothing is
# downloaded then.
#   docker run -d -p 4000:4000 shoal manage -H tcp://0.0.0.0:4000 etcd://10.0.0.5:2379/shoal
#   docker run -d shoal join --advertise 10.0.0.11:2375 etcd://10.0.0.5:2379/shoal
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
COPY . /src
WORKDIR /src
RUN set -e; \
    if ! ls wheels/shoal-*.whl >/dev/null 2>&1; then \
        python3 -m pip wheel --no-cache-dir --wheel-dir wheels . pip; \
    fi; \
    python3 -m venv --without-pip /opt/shoal; \
    pip_wheel=$(ls wheels/pip-*.whl | head -n 1); \
    /opt/shoal/bin/python "$pip_wheel/pip" install --no-index --find-links wheels --no-cache-dir \
        --disable-pip-version-check --no-warn-script-location shoal; \
    /opt/shoal/bin/shoal --version

FROM ${BASE}
COPY --from=build /opt/shoal /opt/shoal
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin shoal
ENV PATH=/opt/shoal/bin:$PATH PYTHONUNBUFFERED=1
USER shoal
EXPOSE 4000
ENTRYPOINT ["shoal"]
CMD ["--help"]
