# Shoal in a container: `docker run -p 4000:4000 shoal manage -H tcp://0.0.0.0:4000 etcd://...`
# (the manager and `shoal join` need no Docker socket; `shoal lab` needs the host and is not for here).
FROM python:3.11-slim
WORKDIR /opt/shoal
COPY pyproject.toml README.md ./
COPY shoal shoal
COPY manager manager
COPY agent agent
COPY scheduler scheduler
COPY discovery discovery
RUN pip install --no-cache-dir . && useradd --system shoal
USER shoal
EXPOSE 4000
ENTRYPOINT ["shoal"]
CMD ["--help"]
