#!/bin/sh
# Registers the namespace archloop runs in and archloop's custom search attributes
# (SEARCH_ATTRIBUTES="Name=Type ..."), skipping what already exists. Runs in
# temporalio/admin-tools once the frontend answers.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:=default}" "${NAMESPACE_RETENTION:=30d}" "${SEARCH_ATTRIBUTES:=}"
export TEMPORAL_ADDRESS

tries=0
until temporal operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -ge 60 ] && { echo "Temporal at $TEMPORAL_ADDRESS is not healthy"; exit 1; }
  sleep 2
done

if ! temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$NAMESPACE_RETENTION"
  echo "created namespace $NAMESPACE"
fi

existing=$(temporal operator search-attribute list --namespace "$NAMESPACE")
for pair in $SEARCH_ATTRIBUTES; do
  name=${pair%%=*}
  type=${pair#*=}
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type"
    echo "created search attribute $name ($type)"
  fi
done
